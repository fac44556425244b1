"""What a run reports besides its results: visdom, metrics files, sample grids, progress bars
and generator health."""
