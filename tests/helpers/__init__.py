"""What the tests share: fixture writers in the datasets' real formats, the scripts' own argument
parsing, and the launchers that tests run as subprocesses."""
