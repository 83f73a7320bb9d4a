import NIOHTTP1
import ProtocolCore

/// The dashboard's routes (reference §7.2, the original's `app-routes`), decided from the method
/// and the decoded path alone so routing is tested without a server.
public enum DashboardRoute: Equatable, Sendable {
    /// `GET /` and `GET /dashboard`.
    case overview
    case topics
    /// `GET /topics/<topic>[?group=G]`.
    case topic(String, group: String?)
    /// `POST /topics/<topic>/groups/<group>/partitions/<n>/skip`: move the group's offset to the
    /// partition's end, refused while a consumer owns it.
    case skip(topic: String, group: String, partition: Int32)
    case cluster
    case config
    /// `POST /reload-config`.
    case reloadConfig
    /// `GET /stats` and `GET /stats/<item>`.
    case stats(item: String?)
    case logging
    /// `GET /metrics` (Prometheus text, from the hook).
    case metrics

    /// Why a request has no route.
    public enum Refusal: Error, Equatable, Sendable {
        case notFound
        /// The path exists for these methods only.
        case methodNotAllowed(allowed: [HTTPMethod])
    }

    /// The route of `method` on `query`'s path, or why there is none.
    public static func resolve(method: HTTPMethod, query: HTTPQuery) -> Result<DashboardRoute, Refusal> {
        let s = query.segments
        let get: DashboardRoute?
        let post: DashboardRoute?
        switch s.count {
        case 0:
            (get, post) = (.overview, nil)
        case 1:
            switch s[0] {
            case "dashboard": (get, post) = (.overview, nil)
            case "topics": (get, post) = (.topics, nil)
            case "cluster": (get, post) = (.cluster, nil)
            case "config": (get, post) = (.config, nil)
            case "reload-config": (get, post) = (nil, .reloadConfig)
            case "stats": (get, post) = (.stats(item: nil), nil)
            case "logging": (get, post) = (.logging, nil)
            case "metrics": (get, post) = (.metrics, nil)
            default: return .failure(.notFound)
            }
        case 2 where s[0] == "topics" && isName(s[1]):
            let group = query["group"].flatMap { $0.isEmpty ? nil : $0 }
            // The group becomes part of ZooKeeper paths: the broker's name rule applies.
            if let group, !isName(group) { return .failure(.notFound) }
            (get, post) = (.topic(s[1], group: group), nil)
        case 2 where s[0] == "stats" && isStatsItem(s[1]):
            (get, post) = (.stats(item: s[1]), nil)
        case 7 where s[0] == "topics" && s[2] == "groups" && s[4] == "partitions" && s[6] == "skip":
            guard isName(s[1]), isName(s[3]), let partition = Int32(s[5]), partition >= 0 else {
                return .failure(.notFound)
            }
            (get, post) = (nil, .skip(topic: s[1], group: s[3], partition: partition))
        default:
            return .failure(.notFound)
        }
        switch method {
        case .GET, .HEAD:
            if let get { return .success(get) }
        case .POST:
            if let post { return .success(post) }
        default:
            break
        }
        return .failure(.methodNotAllowed(allowed: get != nil ? [.GET, .HEAD] : [.POST]))
    }
}

extension DashboardRoute {
    /// A topic or group name in a path: the one name rule of the broker (`MetaName`).
    static func isName(_ name: String) -> Bool { MetaName.problem(with: name) == nil }
}

extension DashboardRoute {
    /// A `stats` item is one wire token (§1.1): printable ASCII without spaces, at most 255 bytes,
    /// so a path cannot smuggle a second command onto the broker's connection.
    static func isStatsItem(_ item: String) -> Bool {
        !item.isEmpty && item.utf8.count <= 255 && item.utf8.allSatisfy { $0 > 0x20 && $0 < 0x7F }
    }
}
