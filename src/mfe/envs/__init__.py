"""Environments: where a release goes and how to talk to it.

`session` owns the boto3 session, the clients and the request counter of one command;
`emulator` runs the embedded moto server; `local` provisions it by API; `stacks` deploys
the CloudFormation stacks of an AWS environment; `outputs` records where each app lives.
"""
