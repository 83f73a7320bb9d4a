import NIOCore
import NIOHTTP1
import NIOPosix
import ProtocolCore

extension BrokerServer {
    /// Starts MetaQ's HTTP message API (reference §7.1) on `host:port`: its connections are the
    /// broker's connections (same loops, same `maxConnections`, same frame decoder and node), with
    /// HTTP in front (`MessageAPIHandler`). Returns the bound port.
    ///
    /// - Throws: ``ListenError`` when the address cannot be bound.
    public func startHTTP(host: String, port: Int) throws -> Int {
        let maxBodyBytes = FrameDecoder.Limits().maxBodyBytes
        let bootstrap = ServerBootstrap(group: connectionGroup ?? group, childGroup: connectionGroup ?? group)
            .serverChannelOption(ChannelOptions.socketOption(.so_reuseaddr), value: 1)
            .serverChannelOption(ChannelOptions.backlog, value: Int32(clamping: config.listenBacklog))
            .serverChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(AcceptMonitor(logger: self.logger))
                }
            }
            .childChannelOption(ChannelOptions.socketOption(.tcp_nodelay), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    let home = self.connectionLoop(of: channel)
                    guard self.admit(channel) else {
                        home.post(.refused)
                        return
                    }
                    let id = ConnectionID(self.nextConnectionID.add(1, ordering: .relaxed).oldValue)
                    let handler = ConnectionHandler(home: home, id: id)
                    let pipeline = channel.pipeline.syncOperations
                    try pipeline.configureHTTPServerPipeline(withPipeliningAssistance: true, withErrorHandling: true)
                    try pipeline.addHandler(MessageAPIHandler(maxBodyBytes: maxBodyBytes))
                    try pipeline.addHandler(handler)
                    home.post(.opened(id, channel, handler))
                }
            }
        let channel: any Channel
        do { channel = try bootstrap.bind(host: host, port: port).wait() } catch {
            throw ListenError(host: host, port: port, error)
        }
        httpServerChannel = channel
        return channel.localAddress?.port ?? port
    }
}
