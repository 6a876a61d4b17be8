#!/usr/bin/python3
"""Interop check with two more client stacks than franz-go and kcat:
kafka-python (pure Python, its own protocol code) and confluent-kafka
(librdkafka). Each produces to a fresh topic with acks=all and compression
and reads everything back by partition assignment (no consumer group: sluice
has no group coordinator yet). Usage: python-clients-test.py HOST:PORT
Debian packages: python3-kafka python3-confluent-kafka (use /usr/bin/python3).
"""
import sys, time
addr = sys.argv[1]
N = 2000
# kafka-python
from kafka import KafkaProducer, KafkaConsumer, TopicPartition
from kafka.admin import KafkaAdminClient, NewTopic
adm = KafkaAdminClient(bootstrap_servers=addr)
adm.create_topics([NewTopic("kp", num_partitions=3, replication_factor=1)])
p = KafkaProducer(bootstrap_servers=addr, acks="all", compression_type="gzip")
for i in range(N):
    p.send("kp", key=str(i % 7).encode(), value=("kp-%d" % i).encode())
p.flush()
c = KafkaConsumer(bootstrap_servers=addr, group_id=None, auto_offset_reset="earliest", consumer_timeout_ms=5000)
c.assign([TopicPartition("kp", i) for i in range(3)])
c.seek_to_beginning()
got = [m.value for m in c]
assert len(got) == N and set(got) == {("kp-%d" % i).encode() for i in range(N)}, len(got)
print("kafka-python ok", len(got), "api_version", p.config["api_version"])
# confluent-kafka (librdkafka)
from confluent_kafka import Producer, Consumer, TopicPartition as CTP, OFFSET_BEGINNING
cp = Producer({"bootstrap.servers": addr, "acks": "all", "compression.type": "zstd", "enable.idempotence": False})
for i in range(N):
    cp.produce("ck", value=("ck-%d" % i).encode())
cp.flush(30)
cc = Consumer({"bootstrap.servers": addr, "group.id": "unused", "enable.auto.commit": False})
cc.assign([CTP("ck", 0, OFFSET_BEGINNING)])
vals = []
deadline = time.time() + 20
while len(vals) < N and time.time() < deadline:
    m = cc.poll(1)
    if m is not None and not m.error():
        vals.append(m.value())
assert vals == [("ck-%d" % i).encode() for i in range(N)], len(vals)
print("confluent-kafka ok", len(vals), "librdkafka", __import__("confluent_kafka").libversion())
