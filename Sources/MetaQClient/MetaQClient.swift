/// MetaQClient: the Swift client library. It wires the ProtocolCore client machines (producer,
/// consumer fetch loop, group membership) to the Runtime's sockets, clocks and ZooKeeper session.
/// It holds no protocol rule of its own.
