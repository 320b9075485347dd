"""Two Things (thing.py): `a` is replaced when config `engine-test:a` changes, and `b`, which
depends on it, fails its create or update while config `engine-test:fail` is set."""

import pulumi

from tests.engine.programs.thing import Thing

config = pulumi.Config("engine-test")
a = Thing("a", {"value": config.require("a")})
b = Thing("b", {"value": "b", "fail": config.get("fail") or "", "after": a.id})
