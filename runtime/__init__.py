"""Run machinery: device and processes, precision, flags, run state and stops, checkpoints,
errors."""
