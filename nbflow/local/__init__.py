"""Running on this machine: the pipeline (`nbflow run`) and the hyperparameter search
(`nbflow tune`)."""
