import ProtocolCore

/// The plain producers and consumers of a world: their machines fed, what they send and receive
/// recorded and checked.
extension Simulation {
    // MARK: Producers

    func produce(_ p: Int) {
        let producer = producers[p]
        guard producer.produced < producer.total else { return }
        let sequence = producer.produced
        producer.produced += 1
        let payload = SimPayload.make(producer: p, sequence: sequence, size: rng.int(in: options.messageSizes), rng: &rng)
        let topic = rng.pick(options.topics)
        let partition: Int32 = rng.chance(0.1) ? -1 : Int32(rng.int(in: 0..<topic.partitions))
        let key = SimPayload.key(producer: p, sequence: sequence)
        ledger[key] = Sent(producer: p, broker: producer.broker, topic: topic.name, payload: payload)
        producerHandle(p, .send(id: key, topic: topic.name, partition: partition, flag: 0, payload: payload))
        if producer.produced < producer.total {
            schedule(.produce(p), afterNs: Int64(rng.int(in: options.produceIntervalMs)) * 1_000_000 + 1)
        }
    }

    func producerHandle(_ p: Int, _ event: ProducerMachine.Event) {
        let producer = producers[p]
        for action in producer.machine.handle(event, now: instant) {
            switch action {
            case .connect:
                producer.decoder = FrameDecoder()
                producer.connection = network.connect(client: producer.client, broker: route(producer.broker))
            case .sendFrame(let frame):
                guard let connection = producer.connection else { continue }
                network.sendToBroker(connection, frame.encoded())
            case .completed(let id, let outcome):
                producer.completed += 1
                record(outcome, of: id)
            case .scheduleTick(let at):
                schedule(.producerTick(p), atNs: at.nanoseconds)
            case .disconnect:
                if let connection = producer.connection { network.closedByClient(connection) }
                producer.connection = nil
            }
        }
    }

    func record(_ outcome: SendOutcome, of key: UInt64) {
        guard var sent = ledger[key] else { return fail("an outcome for a message never sent: \(key)") }
        switch outcome {
        case .acknowledged(let msgId, let partition, let offset):
            sent.outcome = .acknowledged(partition: partition, offset: offset, msgId: msgId)
            counters.acknowledged += 1
            trace(.acknowledged, Int64(partition), offset, "ack p\(sent.producer)#\(key & 0xFFFF_FFFF) broker\(sent.broker) \(sent.topic)-\(partition)@\(offset)")
        case .failed(let code, let text):
            sent.outcome = .failed
            counters.failedPuts += 1
            if text.contains("write failed") || text.contains("sync failed") { counters.failedLogAnswers += 1 }
            if text.contains("Slave is disconnected") { counters.slaveDisconnectedRefusals += 1 }
            trace(.outcome, Int64(code), 0, "put failed p\(sent.producer)#\(key & 0xFFFF_FFFF): \(code) \(text)")
        case .unknown(let reason):
            sent.outcome = .unknown
            counters.unknownPuts += 1
            trace(.outcome, 1, 0, "put unknown p\(sent.producer)#\(key & 0xFFFF_FFFF): \(reason)")
        case .rejected(let reason):
            sent.outcome = .rejected
            counters.rejectedPuts += 1
            trace(.outcome, 2, 0, "put rejected p\(sent.producer)#\(key & 0xFFFF_FFFF): \(reason)")
        }
        ledger[key] = sent
    }

    /// The broker stored a record (called at staging): which incarnation holds `msgId`.
    func stored(broker: Int, msgId: Int64, incarnation: Int) {
        storedBy[broker, default: [:]][msgId] = incarnation
    }

    // MARK: Consumers

    func consumerHandle(_ c: Int, _ event: ConsumerMachine.Event) {
        let consumer = consumers[c]
        for action in consumer.machine.handle(event, now: instant) {
            switch action {
            case .connect:
                consumer.decoder = FrameDecoder()
                consumer.connection = network.connect(client: consumer.client, broker: consumer.broker)
            case .sendFrame(let frame):
                guard let connection = consumer.connection else { continue }
                network.sendToBroker(connection, frame.encoded())
            case .deliver(let messages, let next):
                for message in messages { check(message, deliveredTo: consumer) }
                consumer.damagedAt = nil
                if rng.chance(0.5) { consumer.committedOffset = next }
            case .offsetChanged(let offset):
                counters.consumerMoves += 1
                if offset < consumer.machine.offset || offset <= consumer.lastDeliveredOffset {
                    fail("consumer of broker\(consumer.broker) \(consumer.partition) moved back to \(offset) (was past \(consumer.lastDeliveredOffset))")
                }
            case .reportDamage(let offset, let damage):
                counters.damageReports += 1
                consumer.damagedAt = offset
                if rotRanges[consumer.broker]?[consumer.partition] == nil {
                    fail("consumer of broker\(consumer.broker) \(consumer.partition) was served damaged bytes at \(offset) (\(damage)) with no bit rot injected there")
                }
            case .reportRecordTooLarge(let offset, let bytes, let fetched):
                // A rotten header can announce any length: with rot injected here it is damage.
                if rotRanges[consumer.broker]?[consumer.partition] != nil {
                    counters.damageReports += 1
                    consumer.damagedAt = offset
                    continue
                }
                fail("consumer of broker\(consumer.broker) \(consumer.partition): record at \(offset) too large (\(bytes.map(String.init) ?? "?") bytes, fetched \(fetched))")
            case .reportBrokerError(let code, let text):
                fail("consumer of broker\(consumer.broker) \(consumer.partition): broker answered \(code) \(text)")
            case .recover(let message, _):
                fail("consumer of broker\(consumer.broker) \(consumer.partition) handed off \(message.offset) with no retry policy set")
            case .scheduleTick(let at):
                schedule(.consumerTick(c), atNs: at.nanoseconds)
            case .disconnect:
                if let connection = consumer.connection { network.closedByClient(connection) }
                consumer.connection = nil
            }
        }
    }

    /// Every delivered message was produced (same bytes, same broker and topic, same partition
    /// and offset as acknowledged), and within one fetch run offsets only grow.
    private func check(_ message: Message, deliveredTo consumer: SimConsumer) {
        let place = "broker\(consumer.broker) \(consumer.partition)@\(message.offset)"
        guard let key = checkProduced(message, broker: consumer.broker, partition: consumer.partition, place: place) else { return }
        // An ordered message may be stored twice (§5.6, at least once): its second copy is no repeat.
        guard message.offset > consumer.lastDeliveredOffset, consumer.deliveredInRun.insert(key).inserted || isOrdered(key)
                || txRepairedAfterRot(key, broker: consumer.broker, consumer.partition) else {
            return fail("offsets went backwards or repeated within one fetch run at \(place) (last \(consumer.lastDeliveredOffset))")
        }
        consumer.lastDeliveredOffset = message.offset
        counters.delivered += 1
        if !delivered.insert(key).inserted { counters.redelivered += 1 }
        trace(.delivered, Int64(consumer.client), message.offset, "deliver p\(key >> 32)#\(key & 0xFFFF_FFFF) at \(place)")
    }

    /// The message's key when it is one that was produced, byte for byte, to this broker and
    /// topic (and, once acknowledged, at this partition and offset); nil after failing the run.
    func checkProduced(_ message: Message, broker: Int, partition: TopicPartition, place: String) -> UInt64? {
        guard let key = SimPayload.key(of: message.data), let sent = ledger[key] else {
            fail("delivered bytes nobody produced at \(place)")
            return nil
        }
        guard sent.payload.elementsEqual(message.data), sent.broker == broker, sent.topic == partition.topic else {
            fail("delivered a corrupted or misplaced message p\(sent.producer)#\(key & 0xFFFF_FFFF) at \(place)")
            return nil
        }
        if let tx = txOfMessage[key], !tx.commitSent {
            fail("a message of transaction \(tx.key) (p\(sent.producer)#\(key & 0xFFFF_FFFF)) was readable at \(place) before any COMMIT was sent")
            return nil
        }
        if case .acknowledged(let acked, let offset, _) = sent.outcome,
           acked != partition.partition || offset != message.offset {
            fail("p\(sent.producer)#\(key & 0xFFFF_FFFF) acknowledged at \(acked)@\(offset) but delivered at \(place)")
            return nil
        }
        return key
    }

    /// A consumer process dies and a new one starts at its committed offset: a new fetch run.
    func restartConsumer(_ c: Int) {
        let consumer = consumers[c]
        if let connection = consumer.connection { network.closedByClient(connection) }
        consumer.connection = nil
        consumer.run += 1
        consumer.lastDeliveredOffset = -1
        consumer.deliveredInRun = []
        consumer.damagedAt = nil
        consumer.machine = SimConsumer.machine(consumer.partition, startOffset: consumer.committedOffset,
                                               fetchSize: options.fetchSize)
        consumerHandle(c, .start)
    }

}
