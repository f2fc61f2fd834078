"""Code shapes from real customerio integrations, run by the runtime rules and linted (test_shapes.py).

Every module calls the SDK the way public integrations do; lines that really are pitfalls carry
``# expect: CIO0xx`` (what lint must report there) and the runtime test names what must fire.
"""
