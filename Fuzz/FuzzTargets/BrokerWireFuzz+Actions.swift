import BrokerCore
import ProtocolCore
import Sim
import StoreCore

/// The node's actions, carried out at once against the in-memory disk, with the checks on what
/// leaves the broker.
extension BrokerWireFuzz.Driver {
    mutating func perform(_ action: BrokerNode.Action) {
        switch action {
        case .putAnswer(let connection, let answer):
            putAnswers += 1
            // A put inside a transaction is answered with offset -1: stored only at its commit.
            if answer.offset == -1 { return }
            precondition(answer.offset >= 0, "a put answered with offset \(answer.offset)")
            let key = PutKey(connection: connection.raw, opaque: answer.opaque)
            guard let candidates = puts[key], !candidates.isEmpty else {
                preconditionFailure("an answer to a put never sent: \(key)")
            }
            acknowledged.append(BrokerWireFuzz.Acknowledged(partition: answer.partition, offset: answer.offset,
                                                            candidates: candidates))
        case .reply(_, let response):
            // Every answer must encode into a frame the decoder reads back.
            var decoder = FrameDecoder()
            decoder.feed(Frame.result(response).encoded())
            precondition((try? decoder.next()) == .result(response), "an answer does not round-trip: \(response)")
        case .sendFile(_, let slice, _):
            precondition(slice.count > 0, "an empty slice")
            do {
                let bytes = try slice.file.read(at: slice.position, count: slice.count)
                precondition(bytes.count == slice.count, "a short slice")
                try slice.file.close()
            } catch {
                preconditionFailure("a slice the node handed out cannot be read: \(error)")
            }
        case .startSync(let job):
            handle(.syncFinished(job.partition, id: job.id, job.batch.performed()))
        case .startJournalSync(let job):
            handle(.journalSyncFinished(id: job.id, job.batch.performed()))
        case .endTickNow:
            handle(.tickEnded)
        case .collectProcessFacts(let token):
            handle(.processFacts(token: token, ProcessFacts(pid: 1, threads: 1)))
        case .notice(let notice):
            // The in-memory disk never fails: a failure is a bug the bytes found.
            if case .partitionFailed = notice { preconditionFailure("\(notice)") }
            if case .transactionJournalFailed = notice { preconditionFailure("\(notice)") }
        case .sendValue, .flush, .close, .armTimer, .registerTopic, .syncAnswered, .stopped, .connectToMaster, .sendToMaster,
             .closeMasterLink, .publishInSync, .promote, .logsConsistent, .reloadConfig:
            break
        }
    }

    /// Every file lies in the data directory: the id reservation, or a file of a partition
    /// directory `<topic>-<n>` whose topic the wire would accept.
    func checkFilesStayInTheDataDirectory() {
        let prefix = BrokerWireFuzz.dataPath + "/"
        for path in disk.filePaths() {
            precondition(path.hasPrefix(prefix), "a file outside the data directory: \(path)")
            let components = path.dropFirst(prefix.count).split(separator: "/", omittingEmptySubsequences: false)
            if components.count == 1 {
                // The id reservation, and the partitions an admin request closed (issue 19).
                precondition(components[0].hasPrefix("msgid-reservation") || components[0].hasPrefix(ClosedPartitionsFile.fileName),
                             "an unexpected file: \(path)")
                continue
            }
            precondition(components.count == 2, "a file nested below a partition directory: \(path)")
            let directory = String(components[0])
            if directory == "transactions" {
                // The redo log (§4.3): its files only, whatever the wire sent.
                let name = components[1]
                precondition(name.hasPrefix("redo.") || name.hasPrefix("checkpoint.") || name == "heuristic.log",
                             "an unexpected file in the transaction journal: \(path)")
                continue
            }
            guard let partition = PartitionStores.partition(fromDirectoryName: directory) else {
                preconditionFailure("a directory that is no partition: \(path)")
            }
            precondition(directory == partition.description, "a directory that does not name its partition: \(path)")
            precondition(MetaName.isValid(partition.topic), "a partition of a topic the wire may not name: \(path)")
        }
    }

    /// A crash after the stop (what was synced stays), recovery, and every acknowledged put is read back.
    mutating func checkAcknowledgedPutsSurviveARestart() {
        disk.crash()
        let reopened = PartitionStores(storage: disk, config: node.config, defaultDataPath: BrokerWireFuzz.dataPath)
        do { _ = try reopened.openAll(now: .zero) } catch {
            preconditionFailure("the stores do not open after a crash: \(error)")
        }
        for put in acknowledged {
            let found = put.candidates.contains { candidate in
                guard let log = reopened.log(TopicPartition(candidate.topic, put.partition)) else { return false }
                let wanted = Record.headerSize + candidate.payload.count
                guard let record = try? log.readBytes(offset: put.offset, maxBytes: wanted), record.count == wanted else {
                    return false
                }
                return Array(record[Record.headerSize...]) == candidate.payload
            }
            precondition(found, "acknowledged put at partition \(put.partition) offset \(put.offset) not read back")
        }
        reopened.closeAll()
    }
}
