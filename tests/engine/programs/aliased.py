"""A program in two layouts (config `engine-test:layout`): "old" names a component and its
child one way; "new" renames both, and says so with aliases, as a refactoring must."""

import pulumi

from tests.engine.programs.echo import Echo

config = pulumi.Config("engine-test")
token = config.require_secret("token")
if config.get("layout") == "new":
    class Group(pulumi.ComponentResource):
        def __init__(self, name: str, opts: pulumi.ResourceOptions | None = None) -> None:
            super().__init__("engine-test:index:RenamedGroup", name, None, opts)

    group = Group("group", pulumi.ResourceOptions(
        aliases=[pulumi.Alias(type_="engine-test:index:Group")]))
    echo = Echo("thing-renamed", {"value": "x", "token": token},
                pulumi.ResourceOptions(parent=group, aliases=[pulumi.Alias(name="thing")]))
else:
    group = pulumi.ComponentResource("engine-test:index:Group", "group")
    echo = Echo("thing", {"value": "x", "token": token}, pulumi.ResourceOptions(parent=group))
pulumi.export("derived", echo.derived)
pulumi.export("value", echo.value)
