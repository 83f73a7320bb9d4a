import BrokerCore
import Logging
import NIOCore
import NIOPosix
import ProtocolCore
import StoreCore

/// A slave's connection to its master (issue 17), opened and closed when the node asks. The node
/// decides everything (what to send, when to reconnect); this only carries frames and reports
/// the link's life as events, on the server's loop like every other event.
final class MasterLink {
    /// `meta://host:port` as the node gave it.
    let uri: String
    /// Nil until the connection attempt is under way (or if it failed at once).
    var channel: BrokerChannel?
    var isOpen = false

    init(uri: String) { self.uri = uri }
}

extension BrokerServer {
    /// How long a connection attempt to the master may take before it counts as failed.
    static let masterConnectTimeoutMs: Int64 = 5000
    /// What an answer on the master link may carry beyond the largest fetch: the `value` line and
    /// room to spare.
    static let masterLinkSlackBytes = 64 << 10

    /// The decoder's bounds on the master link: an answer is at most one fetch of the slave, and
    /// the slave's fetches never ask for more than the fetcher allows with this broker's
    /// `maxTransferSize`.
    var masterLinkLimits: FrameDecoder.Limits {
        let largestFetch = ReplicaFetcher.Settings(maxTransferSize: config.maxTransferSize).maxTransferSize
        let bodyBytes = largestFetch + Self.masterLinkSlackBytes
        return FrameDecoder.Limits(maxLineBytes: 4096, maxBodyBytes: bodyBytes, retainedBufferBytes: bodyBytes)
    }

    /// After the node started: a slave configured with `master` learns its address now (in
    /// cluster mode without `master`, ZooKeeper's master node tells it, `BrokerClusterMember`).
    func feedConfiguredMaster() {
        guard let master = config.replication.slave?.master else { return }
        let uri = BrokerAddress(uri: master)?.uri ?? master
        logger.info("replicating from the configured master", metadata: ["master": "\(uri)"])
        handle(.masterAddress(uri))
    }

    /// `.connectToMaster`: `.masterLinkOpened` or `.masterLinkClosed` follows for `link`, unless
    /// the node closes it first.
    func openMasterLink(_ link: UInt64, uri: String) {
        let entry = MasterLink(uri: uri)
        // The node numbers each link anew; a reused number replaces (and silently closes) the old.
        masterLinks.updateValue(entry, forKey: link)?.channel?.close()
        guard let address = BrokerAddress(uri: uri) else {
            logger.error("cannot connect to the master: not a meta://host:port address", metadata: ["master": "\(uri)"])
            loop.execute { self.masterLinkEnded(link) }
            return
        }
        logger.debug("connecting to the master", metadata: ["master": "\(uri)", "link": "\(link)"])
        let channel = BrokerChannel(
            address: address, loop: loop, timeoutMs: Self.masterConnectTimeoutMs, limits: masterLinkLimits,
            onOpen: { self.masterLinkOpened(link) },
            onFrame: { frame in
                guard self.masterLinks[link] != nil else { return }
                self.handle(.masterLinkFrame(link: link, frame))
            },
            onClose: { self.masterLinkEnded(link) })
        // A connection that failed at once has reported and gone already.
        if masterLinks[link] === entry { entry.channel = channel }
    }

    func masterLinkOpened(_ link: UInt64) {
        guard let entry = masterLinks[link] else { return }
        entry.isOpen = true
        var metadata: Logger.Metadata = ["master": "\(entry.uri)", "link": "\(link)"]
        if masterLinkFailures > 0 { metadata["failedAttempts"] = "\(masterLinkFailures)" }
        masterLinkFailures = 0
        logger.info("connected to the master", metadata: metadata)
        handle(.masterLinkOpened(link: link))
    }

    /// The link closed or could not be opened (never called for a link the node closed: it is
    /// gone from `masterLinks` then).
    func masterLinkEnded(_ link: UInt64) {
        guard let entry = masterLinks.removeValue(forKey: link) else { return }
        var metadata: Logger.Metadata = ["master": "\(entry.uri)", "link": "\(link)"]
        if let failure = entry.channel?.failure { metadata["error"] = "\(Self.describe(failure))" }
        if entry.isOpen {
            logger.warning("the connection to the master closed", metadata: metadata)
        } else {
            masterLinkFailures += 1
            // A master that stays down is retried for as long as it is down: one line at 1, 2, 4,
            // 8… failures in a row, not one per attempt.
            if masterLinkFailures & (masterLinkFailures - 1) == 0 {
                metadata["failedAttempts"] = "\(masterLinkFailures)"
                logger.warning("cannot connect to the master", metadata: metadata)
            }
        }
        handle(.masterLinkClosed(link: link))
    }

    /// Closes every master link without reporting (the node has stopped).
    func closeMasterLinks() {
        for link in masterLinks.keys.sorted() { masterLinks.removeValue(forKey: link)?.channel?.close() }
    }

    /// A connection error as an operator reads it (`connection refused`, not NIO's type dump).
    static func describe(_ error: any Error) -> String {
        if let error = error as? IOError { return SystemErrors.describe(error.errnoCode) }
        if let error = error as? NIOConnectionError {
            let attempts = error.connectionErrors.map { describe($0.error) }
            if let first = attempts.first { return first }
            if let dns = error.dnsAAAAError ?? error.dnsAError { return "cannot resolve \(error.host): \(dns)" }
        }
        if let error = error as? ChannelError, case .connectTimeout = error { return "connect timed out" }
        return "\(error)"
    }
}
