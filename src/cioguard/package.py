_instruments = ("customerio >= 3.0.0, < 4",)
