def clean(data, *args, **kwargs):
    return data
