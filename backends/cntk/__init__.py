"""CNTK (Microsoft Cognitive Toolkit): one of the frameworks the seed courses ask to compare, retired.

It is a row in every `rosetta list`, run and report, saying why it cannot run, rather than an absence."""

NAME = "cntk"
DISPLAY_NAME = "CNTK"
IMPORT_NAME = "cntk"
ENVIRONMENT = "shared"
VARIANTS = {"cntk": "not runnable"}
SUPPORTS_GPU = True
SUPPORTS_FLOAT64 = True
RETIRED = ("not runnable: its last release (2.7, 2019) ships no wheel that installs on a current Python, and "
           "Microsoft ended its development")
