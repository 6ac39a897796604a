#!/usr/bin/env python3
"""Write the quick start's sample usage into ``usage/`` beside this script.

Deterministic (a fixed seed, no clock): running it again rewrites the same
bytes, which the test suite checks. Hourly usage of 4 projects from
2026-01-01 to 2026-01-04 (72 hours), in the file collector's formats:

- ``compute.jsonl``: ``cpu`` (vCPUs of each running instance, one record an
  hour) and ``network.outgoing.bytes`` (bytes sent, two records an hour);
- ``storage.csv``: ``volume.size`` and ``image.size`` as periods
  (``begin``/``end``), labels in the extra columns;
- ``network.jsonl``: ``ip.floating`` (1 while the address is attached, 0
  while it is detached).

Usage: python3 generate_usage.py [output directory]
"""

import csv
import datetime
import json
import os
import random
import sys

START = datetime.datetime(2026, 1, 1, tzinfo=datetime.timezone.utc)
HOURS = 72
HOUR = datetime.timedelta(hours=1)
PROJECTS = ['demo-alpha', 'demo-bravo', 'demo-charlie', 'demo-delta']
FLAVORS = [('m1.tiny', '1', 1), ('m1.small', '2', 1), ('m1.medium', '3', 2),
           ('m1.large', '4', 4)]
ZONES = ['nova', 'az-2']


def _iso(moment):
    return moment.strftime('%Y-%m-%dT%H:%M:%SZ')


def _lifetime(rng):
    """First and last hour (excluded) of a resource's life."""
    if rng.random() < 0.6:
        return 0, HOURS
    first = rng.randrange(0, HOURS - 12)
    return first, rng.randrange(first + 6, HOURS + 1)


def _resources(rng):
    """The sample's resources, per project."""
    out = []
    for p_index, project in enumerate(PROJECTS):
        user = f'user-{p_index + 1}'
        for n in range(rng.randint(1, 3)):
            flavor = rng.choice(FLAVORS)
            out.append(('instance', project, user,
                        f'vm-{p_index + 1}{n + 1}', flavor,
                        rng.choice(ZONES), _lifetime(rng)))
        for n in range(rng.randint(1, 2)):
            out.append(('volume', project, user, f'vol-{p_index + 1}{n + 1}',
                        rng.choice([10, 20, 50, 100]),
                        rng.choice(['ssd', 'hdd']), _lifetime(rng)))
        out.append(('image', project, user, f'img-{p_index + 1}',
                    rng.choice([2361393152, 536870912, 13287555072]),
                    rng.choice(['qcow2', 'raw']), _lifetime(rng)))
        if rng.random() < 0.75:
            out.append(('ip', project, user, f'fip-{p_index + 1}', None,
                        None, _lifetime(rng)))
    return out


def generate(directory):
    rng = random.Random(20260101)
    resources = _resources(rng)
    compute, storage, network = [], [], []
    for hour in range(HOURS):
        begin = START + hour * HOUR
        for kind, project, user, rid, spec, extra, (first, last) in resources:
            if not first <= hour < last:
                continue
            if kind == 'instance':
                name, flavor_id, vcpus = spec
                compute.append({
                    'metric': 'cpu', 'scope': project, 'time': _iso(begin),
                    'qty': vcpus, 'labels': {
                        'id': rid, 'user_id': user, 'flavor_name': name,
                        'flavor_id': flavor_id, 'availability_zone': extra}})
                for minute in (0, 30):
                    compute.append({
                        'metric': 'network.outgoing.bytes', 'scope': project,
                        'time': _iso(begin + datetime.timedelta(
                            minutes=minute)),
                        'qty': rng.randrange(0, 400_000_000),
                        'labels': {'id': f'{rid}-eth0', 'user_id': user,
                                   'instance_id': rid}})
            elif kind in ('volume', 'image'):
                metric = 'volume.size' if kind == 'volume' else 'image.size'
                storage.append([metric, project, _iso(begin),
                                _iso(begin + HOUR), spec, rid, user,
                                extra if kind == 'volume' else '',
                                extra if kind == 'image' else ''])
            else:
                attached = rng.random() < 0.9
                network.append({
                    'metric': 'ip.floating', 'scope': project,
                    'time': _iso(begin), 'qty': 1 if attached else 0,
                    'labels': {'id': rid, 'user_id': user, 'state':
                               'attached' if attached else 'detached'}})
    os.makedirs(directory, exist_ok=True)
    for name, records in (('compute.jsonl', compute),
                          ('network.jsonl', network)):
        with open(os.path.join(directory, name), 'w', encoding='utf-8',
                  newline='\n') as stream:
            for record in records:
                stream.write(json.dumps(record, separators=(',', ':')) + '\n')
    with open(os.path.join(directory, 'storage.csv'), 'w', encoding='utf-8',
              newline='') as stream:
        writer = csv.writer(stream, lineterminator='\n')
        writer.writerow(['metric', 'scope', 'begin', 'end', 'qty', 'id',
                         'user_id', 'volume_type', 'disk_format'])
        writer.writerows(storage)


if __name__ == '__main__':
    generate(sys.argv[1] if len(sys.argv) > 1 else os.path.join(
        os.path.dirname(os.path.abspath(__file__)), 'usage'))
