"""Values written as YAML on a command line (`--set key=value`, preset
options), read the way a config file's values are meant."""

import re

import yaml

# PyYAML follows YAML 1.1, which reads `1e-5` (no dot) as a string.
EXPONENT_NUMBER = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)[eE][-+]?\d+")


def parse_yaml_value(text):
    """Parses a command-line value as YAML, reading `1e-5` as a number.

    Raises:
        yaml.YAMLError: the text is not valid YAML.
    """
    value = yaml.safe_load(text) if text.strip() else ""
    if isinstance(value, str) and EXPONENT_NUMBER.fullmatch(value.strip()):
        return float(value)
    return value
