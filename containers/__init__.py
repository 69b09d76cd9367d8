"""KrpSettings and the dependency-injector CoreContainer built from it."""
