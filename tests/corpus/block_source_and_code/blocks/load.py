@data_loader
def load(*args, **kwargs):
    return 1
