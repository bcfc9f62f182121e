"""Environments: where a release goes and how to talk to it.

`backend` is the small interface every kind implements, one module per kind: `local`
(the embedded emulator, provisioned by API; its process in `emulator` and
`moto_server`, what it changes of moto in `moto_patches` and adds to its Cognito in
`moto_cognito`), `aws` (real AWS: the stacks named and parametrized in `stacks`, deployed by
`cloudformation`) and `dev` (what `doit
serve` renders). `session` owns the boto3 clients, request counter and outputs of one
command (`aws_settings` tells botocore's refusals of the AWS settings in one line); `outputs` records where each app lives; `naming` checks the resource names;
`users` manages the login pool's users.
"""
