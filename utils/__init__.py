"""The original release's kind of utilities: segmentation metrics, the visdom logger and joint
transforms."""
