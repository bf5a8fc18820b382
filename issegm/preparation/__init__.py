"""The library of issegm/prepare_data.py (and make_lists.py): layouts.py (where a dataset's
images and labels are as downloaded, where its list goes), samples.py (one sample checked and,
for GTA-5 and SYNTHIA, converted in place)."""
