"""Tools that run from a checkout of nimbus; none of them ships in the wheel."""
