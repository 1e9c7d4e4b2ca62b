"""The parts of scripts/bench, one concern each."""
