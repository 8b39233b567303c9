"""Plan review: what changed between two plans, a page a reviewer can read, the promotion gate."""
