import ProtocolCore
import Sim
import StoreCore

/// The broker machine's actions, carried out at once against the in-memory stores.
extension BrokerWireFuzz.Driver {
    mutating func perform(_ action: BrokerMachine.Action) {
        switch action {
        case .append(let token, let partition, let record): append(token, partition, record)
        case .read(let token, let partition, let offset, let maxBytes):
            let (read, slice) = stores.read(partition, offset: offset, maxBytes: maxBytes)
            if let slice {
                precondition(slice.count <= maxBytes && slice.count > 0, "slice of \(slice.count) for \(maxBytes)")
            }
            handle(.read(token: token, read))
        case .readBytes(let token, let partition, let offset, let maxBytes):
            handle(.read(token: token, stores.readBytes(partition, offset: offset, maxBytes: maxBytes)))
        case .nearestOffset(let token, let partition, let offset):
            handle(.nearestOffset(token: token, stores.log(partition)?.nearestOffset(offset) ?? 0))
        case .putAnswer(_, let answer):
            precondition(answer.offset >= 0, "a put answered with offset \(answer.offset)")
            putAnswers += 1
        case .reply(_, let response):
            // Every answer must encode into a frame the decoder reads back.
            var decoder = FrameDecoder()
            decoder.feed(Frame.result(response).encoded())
            precondition((try? decoder.next()) == .result(response), "an answer does not round-trip: \(response)")
        case .persistIdReservation(let reservation):
            do { try IdReservationFile.save(reservation, storage: disk, dataPath: BrokerWireFuzz.dataPath) } catch {
                preconditionFailure("cannot persist the id reservation on the in-memory disk: \(error)")
            }
        case .collectStats(let token, _):
            handle(.statsCollected(token: token, stores.statsSnapshot(pid: 1, uptimeSeconds: 1, threads: 1,
                                                                      currentConnections: decoders.count, configChecksum: 0)))
        case .sendSlice, .sendBytes, .sendConfigFile, .close:
            break
        }
    }

    /// Appends and syncs at once; the put is acknowledged only if the sync covered it.
    mutating func append(_ token: UInt64, _ partition: TopicPartition, _ record: BrokerMachine.AppendRecord) {
        let result: Result<Int64, BrokerMachine.StoreFailure>
        do {
            let log = try stores.logCreatingIfNeeded(partition, now: .zero)
            let outcome = try log.append(msgId: record.msgId, flag: record.flag, payload: record.payload,
                                         ticket: token, now: .zero)
            let synced = try log.syncNow(now: .zero)
            precondition(outcome.acknowledged || synced.contains(token), "a synced append was not acknowledged")
            acknowledged.append(BrokerWireFuzz.Acknowledged(partition: partition, offset: outcome.offset,
                                                            payload: record.payload))
            result = .success(outcome.offset)
        } catch {
            result = .failure(.init("\(error)"))
        }
        handle(.appended(token: token, result))
    }

    /// Every file lies in the data directory: the id reservation, or a file of a partition
    /// directory `<topic>-<n>` whose topic the wire would accept.
    func checkFilesStayInTheDataDirectory() {
        let prefix = BrokerWireFuzz.dataPath + "/"
        for path in disk.filePaths() {
            precondition(path.hasPrefix(prefix), "a file outside the data directory: \(path)")
            let components = path.dropFirst(prefix.count).split(separator: "/", omittingEmptySubsequences: false)
            if components.count == 1 {
                precondition(components[0].hasPrefix("msgid-reservation"), "an unexpected file: \(path)")
                continue
            }
            precondition(components.count == 2, "a file nested below a partition directory: \(path)")
            let directory = String(components[0])
            guard let partition = PartitionStores.partition(fromDirectoryName: directory) else {
                preconditionFailure("a directory that is no partition: \(path)")
            }
            precondition(directory == partition.description, "a directory that does not name its partition: \(path)")
            precondition(MetaName.isValid(partition.topic), "a partition of a topic the wire may not name: \(path)")
        }
    }

    /// A crash (what was synced stays), recovery, and every acknowledged put is read back.
    mutating func checkAcknowledgedPutsSurviveARestart() {
        stores.closeAll()
        disk.crash()
        let reopened = PartitionStores(storage: disk, config: stores.config, defaultDataPath: BrokerWireFuzz.dataPath)
        do { _ = try reopened.openAll(now: .zero) } catch {
            preconditionFailure("the stores do not open after a crash: \(error)")
        }
        for put in acknowledged {
            guard let log = reopened.log(put.partition) else {
                preconditionFailure("acknowledged partition \(put.partition) is gone after a restart")
            }
            let wanted = Record.headerSize + put.payload.count
            let bytes: [UInt8]?
            do { bytes = try log.readBytes(offset: put.offset, maxBytes: wanted) } catch {
                preconditionFailure("cannot read \(put.partition) at \(put.offset): \(error)")
            }
            let record = bytes ?? []
            precondition(record.count == wanted && Array(record[Record.headerSize...]) == put.payload,
                          "acknowledged put at \(put.partition) \(put.offset) not read back")
        }
        reopened.closeAll()
    }
}
