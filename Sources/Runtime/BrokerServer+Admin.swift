import BrokerCore
import NIOCore
import ProtocolCore
import StoreCore

/// `reload` (reference §8.4): the one code path of `metaq-server reload` (a `stats admin@reload`
/// request, which the node turns into `.reloadConfig`) and of the dashboard (`reload()`). The
/// runtime only reads and parses the file; what changes is the node's decision
/// (`BrokerNode.reload`).
extension BrokerServer {
    /// Re-reads the server.ini the broker started with and applies its topic sections; the
    /// future carries the outcome as an operator reads it (what changed, what needs a restart,
    /// or why nothing did).
    public func reload() -> EventLoopFuture<String> {
        loop.submit { self.reloadOnLoop(replyTo: nil) }
    }

    /// On the loop: reads, parses, hands the result to the node and carries out its actions
    /// (the answer to `replyTo` among them).
    @discardableResult
    func reloadOnLoop(replyTo: (connection: ConnectionID, opaque: Int32)?) -> String {
        let loaded: BrokerNode.ConfigReload
        if let configPath {
            do {
                let bytes = try ConfigFile.read(configPath)
                let config = try ServerConfig(parsing: String(decoding: bytes, as: UTF8.self), path: configPath)
                loaded = .loaded(config, file: bytes, path: configPath)
            } catch {
                loaded = .unreadable("\(error)")
            }
        } else {
            loaded = .unreadable("the broker was started without a config file")
        }
        var actions: [BrokerNode.Action] = []
        let text = node.reload(loaded, replyTo: replyTo, clock: clock(), into: &actions)
        for action in actions { perform(action) }
        scheduleEndOfTick()
        return text
    }
}
