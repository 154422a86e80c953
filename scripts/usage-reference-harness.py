"""Runs the reference UsageHandler over audit cases and prints what it produced (JSON lines).

Run by scripts/usage-reference-fixture.ts inside a scratch directory under /tmp, next to the
reference's winchester/pipeline_handler.py taken from the stacktach-winchester mirror. It is our
harness, not reference code: it only feeds the reference handler and records its output.

Input (stdin): one case per line, {"name", "stream_id", "events": [flat events]} where datetimes
are ISO-8601 strings ending in Z with six fractional digits (our flat event format).
Output (stdout): one line per case, {"name", "new_events": [...]} or {"name", "error": "..."}.
"""
import datetime
import json
import logging
import re
import sys
import types

# The reference module imports notabene's RabbitMQ driver at import time (only NotabeneHandler
# uses it) and notabene does not run on Python 3: an empty stand-in lets the module load.
notabene = types.ModuleType('notabene')
notabene.kombu_driver = types.ModuleType('notabene.kombu_driver')
sys.modules['notabene'] = notabene
sys.modules['notabene.kombu_driver'] = notabene.kombu_driver

import pipeline_handler  # noqa: E402  (the reference file, copied next to this one)

OUR_DATETIME = re.compile(r'^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z$')
ENVELOPE = ('message_id', 'event_type', 'timestamp')
# Event types whose message id the reference draws at random (uuid4): not comparable.
RANDOM_ID = {'compute.instance.exists.warnings'}


def to_python(value):
    if isinstance(value, str) and OUR_DATETIME.match(value):
        return datetime.datetime.strptime(value, '%Y-%m-%dT%H:%M:%S.%fZ')
    return value


def iso(dt):
    return dt.strftime('%Y-%m-%dT%H:%M:%S.%fZ')


def typed(value):
    # The reference's Trait.get_type_value: the Python type decides the trait type.
    if isinstance(value, bool):
        raise TypeError('bool trait')
    if isinstance(value, datetime.datetime):
        return ['datetime', iso(value)]
    if isinstance(value, int):
        return ['int', value]
    if isinstance(value, float):
        return ['float', value]
    return ['text', str(value)]


def json_friendly(value):
    if value is None:
        return None
    if isinstance(value, datetime.datetime):
        return iso(value)
    if isinstance(value, (int, float, str)):
        return value
    return str(value)  # the uuid.UUID of a derived message id


def record(new_event):
    event_type = new_event['event_type']
    random_id = event_type in RANDOM_ID or new_event.get('error_code') == 'U0'
    traits = {}
    for key, value in new_event.items():
        # save_event: envelope fields are not traits, None values are dropped.
        if key in ENVELOPE or value is None:
            continue
        traits[key] = typed(value)
    notification = {k: json_friendly(v) for k, v in new_event.items()}
    if random_id:
        notification['message_id'] = None
    return {
        'event_type': event_type,
        'message_id': None if random_id else str(new_event['message_id']),
        'timestamp': iso(new_event['timestamp']),
        'traits': traits,
        'notification': notification,
    }


def run(case):
    events = []
    for flat in case['events']:
        events.append({k: to_python(v) for k, v in flat.items()})
    handler = pipeline_handler.UsageHandler()
    env = {'stream_id': int(case['stream_id']), 'stream_name': 'test_trigger'}
    try:
        out = handler.handle_events(list(events), env)
    except Exception as e:  # the reference's pipeline would fail this batch
        return {'name': case['name'], 'error': '%s: %s' % (type(e).__name__, e)}
    return {'name': case['name'], 'new_events': [record(e) for e in out[len(events):]]}


def main():
    # The reference logs every failure and every block at WARNING; only its output matters here.
    logging.disable(logging.CRITICAL)
    for line in sys.stdin:
        if line.strip():
            print(json.dumps(run(json.loads(line)), sort_keys=True))


if __name__ == '__main__':
    main()
