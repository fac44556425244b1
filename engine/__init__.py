"""The method: the DFAD adversarial loop, the teacher loop, evaluation, losses and the scripts'
flags."""
