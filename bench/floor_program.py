"""The floor: a Pulumi program that only registers resources, with the plan's imports.

Config (strings, as the CLI passes them): `floor:resources` (count), `floor:inputBytes`
(serialized inputs per resource, to match the measured program) and `floor:modules` (the
provider SDK modules the measured program loaded, comma-separated; `bench/phases.py` lists
them). Every resource is a `command:remote:Command` with a secret SSH connection, a command
line and stdin, like the program's host steps, but built flat with no model, components or
dependencies.
"""

import importlib

import pulumi
import pulumi_aws as aws
import pulumi_command as command
import pulumi_f5bigip as f5
import pulumi_kubernetes as k8s

# The provider modules the program loads (pulumi_aws and pulumi_f5bigip load lazily).
_ = (aws.Provider, aws.s3.Bucket, aws.kms.Key, f5.Provider, f5.ltm.Pool, k8s.Provider)

config = pulumi.Config("floor")
count = config.require_int("resources")
input_bytes = config.require_int("inputBytes")
for module in filter(None, (config.get("modules") or "").split(",")):
    importlib.import_module(module)  # the same provider imports as the program, before any resource
connection = command.remote.ConnectionArgs(
    host="10.0.1.11", port=22, user="deploy", private_key=pulumi.Output.secret("x" * 400),
    dial_error_limit=20, per_dial_timeout=30,
)
create = "sudo install -D -m 0644 -o root -g root /dev/stdin /etc/floor/file.conf"
stdin = "x" * max(0, input_bytes - 740)  # ~740 bytes are the connection, command line and wire overhead
for i in range(count - 1):  # the Stack resource is the first of `count`
    command.remote.Command(f"floor-{i}", connection=connection, create=create, stdin=stdin)
