# data/: files the program reads at run time, installed under $(pkgdatadir)
# (share/sokhan): the sample dataset (the Train form's default) and its
# data card. An uninstalled build finds them in data/ beside ./sokhan
# (engine/paths.c, sk_data_path).
dist_pkgdata_DATA = data/persian-sample.jsonl data/README.md
