"""Attribution (blame, attributed diffs, the client id → author map) and fork."""
