"""The deploy kit (``deploy/``): its files checked, and its topology run with local processes."""
