// metaq-server: argument parsing and wiring only (DESIGN.md §2).
import ArgumentParser

@main
struct MetaQServer: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "metaq-server",
        abstract: "A MetaQ 1.4.6 compatible broker.",
        subcommands: [Start.self, Stop.self, Status.self, Stats.self, SlaveStatus.self, Reload.self, ClosePartitions.self,
                      OpenPartitions.self, MovePartitions.self, DeletePartitions.self])
}
