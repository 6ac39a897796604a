"""``oslopolicy-sample-generator --namespace cloudkitty`` (the ``genpolicy``
tox environment) finds our rules through the ``oslo.policy.policies``
entry point."""

import os
import subprocess
import sys

from cloudkitty import policies


def test_sample_generator_lists_every_rule(tmp_path):
    script = os.path.join(os.path.dirname(sys.executable),
                          'oslopolicy-sample-generator')
    output = tmp_path / 'policy.yaml'
    subprocess.run([script, '--namespace', 'cloudkitty', '--output-file',
                    str(output)], check=True, capture_output=True,
                   timeout=120)
    sample = output.read_text()
    for rule in policies.list_rules():
        assert f'#"{rule.name}": "{rule.check_str}"' in sample
