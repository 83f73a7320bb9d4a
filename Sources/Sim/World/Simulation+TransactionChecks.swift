import ProtocolCore
import StoreCore

/// The transaction checkers at the end (reference §4): every partition of every broker is read
/// from its first to its last synced byte, and each transaction is compared with what its client
/// learnt — a COMMIT answered 200 (or a global transaction whose manager logged commit): every
/// message readable exactly once, with the message id its put was answered; a COMMIT whose
/// answer was lost: all or nothing, none twice; never committed (rolled back, abandoned,
/// refused, a global transaction without a commit decision): nothing. Every prepared branch was
/// finished. (While the world runs, `checkProduced` fails any message read before its
/// transaction's COMMIT was sent.)
extension Simulation {
    struct TxFound {
        var broker: Int
        var partition: TopicPartition
        var offset: Int64
        var msgId: Int64
    }

    func checkTransactionsAtTheEnd() {
        guard options.transactions != nil else { return }
        let (found, damaged) = readableTransactionMessages()
        for tx in txRecords {
            let expect: TxExpectation
            switch tx.kind {
            case .local:
                switch tx.outcome {
                case .committed: expect = .all
                case .unknown: expect = .allOrNone
                case .notCommitted, .open: expect = .none
                }
            case .branch(let g):
                guard let manager = txManagers.first(where: { $0.name == tx.owner }) else { continue }
                if tx.prepared && !tx.finished {
                    fail("\(tx.key) was prepared on broker\(tx.broker) and never finished")
                }
                expect = manager.log[manager.globals[g].gtrid] == true ? .all : .none
            }
            var present = 0, required = 0
            for put in tx.puts {
                let copies = found[put.key] ?? []
                let partition = TopicPartition(put.topic, put.partition)
                let excused = damaged.contains(SlotKey(broker: tx.broker, partition: partition))
                    || (brokers[tx.broker].retentionFloor[partition] ?? 0) > 0
                if !excused { required += 1 }
                if copies.count > 1 && !(excused && rotRanges[tx.broker]?[partition] != nil) {
                    fail("\(tx.key): message p\(put.key >> 32)#\(put.key & 0xFFFF_FFFF) is readable \(copies.count) times "
                         + "(\(copies.map { "broker\($0.broker) \($0.partition)@\($0.offset)" }.joined(separator: ", ")))")
                }
                guard let copy = copies.first else { continue }
                present += 1
                if copy.broker != tx.broker || copy.partition != partition {
                    fail("\(tx.key): message p\(put.key >> 32)#\(put.key & 0xFFFF_FFFF) put to broker\(tx.broker) \(partition) "
                         + "is readable at broker\(copy.broker) \(copy.partition)@\(copy.offset)")
                }
                if let msgId = put.msgId, msgId != copy.msgId {
                    fail("\(tx.key): message p\(put.key >> 32)#\(put.key & 0xFFFF_FFFF) was answered msgId \(msgId) but is stored "
                         + "with \(copy.msgId)")
                }
            }
            switch expect {
            case .all where present < required:
                fail("\(tx.key) was committed (\(tx.kind.isLocal ? "COMMIT answered 200" : "its manager logged commit")) but only "
                     + "\(present) of its \(tx.puts.count) messages are readable on broker\(tx.broker)")
            case .allOrNone where present > 0 && present < required:
                fail("\(tx.key) (its COMMIT unanswered) is half visible: \(present) of its \(tx.puts.count) messages readable on "
                     + "broker\(tx.broker)")
            case .none where present > 0:
                fail("\(tx.key) never committed (\(tx.outcome)), yet \(present) of its messages are readable on broker\(tx.broker)")
            default: break
            }
            if failuresCount >= 20 { return }
        }
    }

    enum TxExpectation { case all, allOrNone, none }

    /// A committed batch that bit rot damaged is appended again by recovery (§4.5): a reader
    /// that had read it before the rot reads its messages a second time.
    func txRepairedAfterRot(_ key: UInt64, broker: Int, _ partition: TopicPartition) -> Bool {
        txOfMessage[key] != nil && rotRanges[broker]?[partition] != nil
    }

    struct SlotKey: Hashable {
        var broker: Int
        var partition: TopicPartition
    }

    /// Every transactional message readable on the brokers now (synced bytes, as a consumer reads
    /// them), by ledger key; and the partitions where damage stopped or skipped the reading.
    func readableTransactionMessages() -> (found: [UInt64: [TxFound]], damaged: Set<SlotKey>) {
        var found: [UInt64: [TxFound]] = [:]
        var damaged: Set<SlotKey> = []
        for broker in brokers {
            guard let node = broker.node else { continue }
            for partition in node.stores.partitions {
                guard let log = node.stores.log(partition) else { continue }
                var offset = log.minOffset
                var steps = 0
                reading: while steps < 100_000 {
                    steps += 1
                    switch log.read(offset: offset, maxBytes: 1 << 20) {
                    case .slice(let slice):
                        guard let bytes = try? log.bytes(of: slice) else {
                            damaged.insert(SlotKey(broker: broker.id, partition: partition))
                            break reading
                        }
                        var iterator = RecordIterator(bytes, baseOffset: offset)
                        var consumed = 0
                        while let element = iterator.next() {
                            switch element {
                            case .message(let message):
                                if let key = SimPayload.key(of: message.data), txOfMessage[key] != nil {
                                    found[key, default: []].append(TxFound(broker: broker.id, partition: partition,
                                                                           offset: message.offset, msgId: message.id))
                                }
                            case .incomplete: break  // read on from where the whole records end
                            case .damaged:
                                damaged.insert(SlotKey(broker: broker.id, partition: partition))
                            }
                        }
                        consumed = iterator.consumedBytes
                        guard consumed > 0 else {
                            damaged.insert(SlotKey(broker: broker.id, partition: partition))
                            break reading
                        }
                        offset += Int64(consumed)
                    case .damaged(let resumeAt):
                        damaged.insert(SlotKey(broker: broker.id, partition: partition))
                        offset = resumeAt
                    case .belowMinimum(let minOffset):
                        offset = minOffset
                    case .atOrBeyondEnd:
                        break reading
                    }
                }
            }
        }
        return (found, damaged)
    }
}

extension SimTxRecord.Kind {
    var isLocal: Bool { if case .local = self { return true } else { return false } }
}
