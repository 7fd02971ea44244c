"""Differential tester: seeded operation sequences run against two servers, replies compared."""
