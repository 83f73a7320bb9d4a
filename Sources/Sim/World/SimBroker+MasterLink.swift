import BrokerCore
import ProtocolCore

/// A slave's master link (issue 17) over the simulated network, as the runtime carries it over a
/// socket: `.connectToMaster` opens a connection on which the slave is the client (so delays,
/// drops and partitions between the two processes apply to it as to any client's), its requests
/// are encoded and flushed with the node's other output, the master's answers are decoded into
/// frames, and the link's end — a reset, a failed attempt — comes back as `.masterLinkClosed`
/// (never after `.closeMasterLink`). No rule of replication lives here.
///
/// Rebooted hosts: a slave that restarted after a power loss answers bytes of a connection its
/// earlier incarnation held with a reset (its kernel no longer knows it), so the master learns
/// the old link is gone as soon as it next writes on it; `SimNetwork` does the same for a
/// restarted master.
extension SimBroker {
    struct MasterLink {
        /// The node's number for the link.
        let number: UInt64
        /// The network connection carrying it.
        let connection: Int
        var open = false
        var decoder = FrameDecoder()
        /// Requests not flushed yet.
        var out: [UInt8] = []
    }

    func connectToMaster(_ link: UInt64, uri: String) {
        guard let process else { return }
        if let old = process.masterLink { sim.network.closedByClient(old.connection) }
        guard let master = sim.process(forURI: uri) else {
            process.masterLink = nil
            return sim.fail("\(name) was told to follow \(uri), which is no broker of the world")
        }
        let connection = sim.network.connect(client: client, broker: master, masterLink: true)
        process.masterLink = MasterLink(number: link, connection: connection)
        sim.trace(.masterLink, Int64(id), Int64(connection), "\(name) connects to its master \(uri) (link \(link), conn\(connection))")
    }

    func sendToMaster(_ link: UInt64, _ frame: Frame) {
        guard let process, process.masterLink?.number == link else { return }
        frame.encode(into: &process.masterLink!.out)
    }

    func flushMasterLink() {
        guard let process, let link = process.masterLink, link.open, !link.out.isEmpty else { return }
        process.masterLink!.out = []
        sim.network.sendToBroker(link.connection, link.out)
    }

    func closeMasterLink(_ link: UInt64) {
        guard let process, let current = process.masterLink, current.number == link else { return }
        flushMasterLink()
        process.masterLink = nil
        sim.network.closedByClient(current.connection)
        sim.trace(.masterLink, Int64(id), Int64(current.connection), "\(name) closes its master link \(link)")
    }

    // MARK: The network's calls (the slave is the client end of its link)

    func masterLinkAnswered(_ connection: Int, ok: Bool) {
        guard let process, let link = process.masterLink, link.connection == connection else {
            // An attempt of an earlier incarnation got through: this host resets it.
            if ok && isUp { sim.network.closedByClient(connection) }
            return
        }
        if ok {
            process.masterLink!.open = true
            sim.counters.masterLinksOpened += 1
            feed(.masterLinkOpened(link: link.number))
        } else {
            process.masterLink = nil
            feed(.masterLinkClosed(link: link.number))
        }
    }

    func masterLinkLost(_ connection: Int) {
        guard let process, let link = process.masterLink, link.connection == connection else { return }
        process.masterLink = nil
        sim.trace(.masterLink, Int64(id), Int64(connection), "\(name) lost its master link \(link.number)")
        feed(.masterLinkClosed(link: link.number))
    }

    /// One delivery of the master's bytes: every whole answer fed, then the tick ends.
    func masterLinkReceive(_ connection: Int, _ bytes: [UInt8]) {
        guard let process else { return }  // the host is off: nothing answers
        guard let link = process.masterLink, link.connection == connection else {
            sim.network.closedByClient(connection)
            return
        }
        process.masterLink!.decoder.feed(bytes)
        do {
            while self.process === process, process.masterLink?.connection == connection,
                  let frame = try process.masterLink!.decoder.next() {
                feed(.masterLinkFrame(link: link.number, frame), endTick: false)
            }
        } catch {
            return sim.fail("\(name) cannot decode its master's bytes: \(error)")
        }
        if self.process === process { feed(.tickEnded, endTick: false) }
    }
}
