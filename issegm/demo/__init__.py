"""The CBST demo: synthetic GTA-5 -> Cityscapes data and the whole pipeline run on it.

* ``python -m issegm.demo --output runs/demo`` (``make demo``): pipeline.py runs every step;
* make_data.py: ``generate()`` and the data command line (``python -m issegm.demo.make_data``;
  the old ``issegm/make_demo_data.py`` still works and is the same);
* scenes.py draws one scene layer by layer, objects.py the street objects, drawing.py holds
  the camera, canvas, colours and facade patterns, styles.py the two domains' parameters.
"""
