#!/usr/bin/python3
"""Interop check with two more client stacks than franz-go and kcat:
kafka-python (pure Python, its own protocol code) and confluent-kafka
(librdkafka). Each produces to a fresh topic with acks=all and compression,
checks that every record was acknowledged, and reads everything back by
partition assignment (no consumer group: sluice has no group coordinator
yet), polling until all N records are in or a 30 s deadline passes.
Usage: python-clients-test.py HOST:PORT
Debian packages: python3-kafka python3-confluent-kafka (use /usr/bin/python3).
"""
import sys, time
addr = sys.argv[1]
N = 2000
DEADLINE = 30  # seconds, for each read-back

# kafka-python
from kafka import KafkaProducer, KafkaConsumer, TopicPartition
from kafka.admin import KafkaAdminClient, NewTopic
adm = KafkaAdminClient(bootstrap_servers=addr)
adm.create_topics([NewTopic("kp", num_partitions=3, replication_factor=1)])
adm.close()
p = KafkaProducer(bootstrap_servers=addr, acks="all", compression_type="gzip")
futures = [p.send("kp", key=str(i % 7).encode(), value=("kp-%d" % i).encode()) for i in range(N)]
p.flush(timeout=DEADLINE)
for f in futures:
    f.get(timeout=DEADLINE)  # raises if the record was not acknowledged
want = {("kp-%d" % i).encode() for i in range(N)}
c = KafkaConsumer(bootstrap_servers=addr, group_id=None, auto_offset_reset="earliest", enable_auto_commit=False)
c.assign([TopicPartition("kp", i) for i in range(3)])
c.seek_to_beginning()
seen, read = set(), 0
deadline = time.time() + DEADLINE
while len(seen) < N and time.time() < deadline:
    for msgs in c.poll(timeout_ms=500).values():
        for m in msgs:
            seen.add(m.value)
            read += 1
c.close()
assert seen == want, "kafka-python: read %d records, %d distinct of %d wanted, %d unknown" % (
    read, len(seen & want), N, len(seen - want))
print("kafka-python ok", len(seen), "api_version", p.config["api_version"])
p.close()

# confluent-kafka (librdkafka)
from confluent_kafka import Producer, Consumer, TopicPartition as CTP, OFFSET_BEGINNING
cp = Producer({"bootstrap.servers": addr, "acks": "all", "compression.type": "zstd", "enable.idempotence": False})
delivered, errors = 0, []
def on_delivery(err, msg):
    global delivered
    if err is not None:
        errors.append(err)
    else:
        delivered += 1
for i in range(N):
    cp.produce("ck", value=("ck-%d" % i).encode(), on_delivery=on_delivery)
    cp.poll(0)
left = cp.flush(DEADLINE)
assert left == 0, "confluent-kafka: %d records still undelivered after %d s" % (left, DEADLINE)
assert not errors and delivered == N, "confluent-kafka: %d delivered, %d failed, e.g. %s" % (
    delivered, len(errors), errors[:3])
cc = Consumer({"bootstrap.servers": addr, "group.id": "unused", "enable.auto.commit": False})
cc.assign([CTP("ck", 0, OFFSET_BEGINNING)])
vals, last_err = [], None
deadline = time.time() + DEADLINE
while len(vals) < N and time.time() < deadline:
    m = cc.poll(0.5)
    if m is None:
        continue
    if m.error():
        last_err = m.error()
    else:
        vals.append(m.value())
cc.close()
assert vals == [("ck-%d" % i).encode() for i in range(N)], "confluent-kafka: read %d of %d records in order (last error: %s)" % (
    len(vals), N, last_err)
print("confluent-kafka ok", len(vals), "librdkafka", __import__("confluent_kafka").libversion())
