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
        let channel = try listen(host: host, port: port) { pipeline in
            try pipeline.configureHTTPServerPipeline(withPipeliningAssistance: true, withErrorHandling: true)
            try pipeline.addHandler(MessageAPIHandler(maxBodyBytes: maxBodyBytes))
        }
        httpServerChannel = channel
        return channel.localAddress?.port ?? port
    }
}
