"""Code that runs inside pods, standard library only at import time and importing nothing of
nbflow: the step runtime and the Katib trial launcher."""
