"""The library of issegm/predict.py: inputs.py (images, folders, lists, videos, checked),
outputs.py (the output kinds, rendered and written), images.py (predict a list of images),
video.py (a video's overlay video), record.py (predict.json, --overwrite, summary.json)."""
