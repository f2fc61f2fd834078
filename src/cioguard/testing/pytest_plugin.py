"""pytest plugin (entry point ``pytest11``): provides the ``fake_customerio`` fixture."""
