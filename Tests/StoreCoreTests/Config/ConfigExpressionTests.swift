import Testing
@testable import StoreCore

extension ConfigTests {
    /// Numeric values are integer expressions, as MetaQ evaluates them with Aviator (reference §8).
    @Suite struct Expressions {
        private func value(_ text: String) throws -> Int64 {
            try ConfigExpression.evaluate(text)
        }

        private func failure(_ text: String) -> String? {
            do throws(ConfigExpressionError) {
                _ = try ConfigExpression.evaluate(text)
                return nil
            } catch {
                return error.message
            }
        }

        @Test func literalsAndProducts() throws {
            #expect(try value("0") == 0)
            #expect(try value("8123") == 8123)
            #expect(try value("1024*1024") == 1_048_576)
            #expect(try value("1024*1024*1024") == 1_073_741_824)
            #expect(try value("10 * 1000") == 10_000)
            #expect(try value("  7\t") == 7)
            #expect(try value("9223372036854775807") == Int64.max)
        }

        @Test func precedenceAndParentheses() throws {
            #expect(try value("2+3*4") == 14)
            #expect(try value("(2+3)*4") == 20)
            #expect(try value("2*3+4*5") == 26)
            #expect(try value("100-10-1") == 89)            // left-associative
            #expect(try value("100/10/2") == 5)
            #expect(try value("((1))+((2*(3+4)))") == 15)
            #expect(try value("7 * 24 % 10") == 8)           // (7*24)%10
        }

        @Test func unaryMinus() throws {
            #expect(try value("-5") == -5)
            #expect(try value("--5") == 5)
            #expect(try value("-(2+3)*2") == -10)
            #expect(try value("3*-2") == -6)
            #expect(try value("-9223372036854775807-1") == Int64.min)
        }

        @Test func javaDivisionRules() throws {
            #expect(try value("7/2") == 3)
            #expect(try value("-7/2") == -3)                 // truncates toward zero
            #expect(try value("-7%3") == -1)                 // sign of the dividend
            #expect(try value("7%-3") == 1)
        }

        @Test func overflowIsAnError() {
            #expect(failure("9223372036854775807+1") == "9223372036854775807 + 1 overflows a 64-bit integer")
            #expect(failure("4294967296*4294967296") == "4294967296 * 4294967296 overflows a 64-bit integer")
            #expect(failure("-9223372036854775807-2") == "-9223372036854775807 - 2 overflows a 64-bit integer")
            #expect(failure("(-9223372036854775807-1)/-1") == "-9223372036854775808 / -1 overflows a 64-bit integer")
            #expect(failure("9223372036854775808") == "number at column 1 does not fit in a 64-bit integer")
            #expect(failure("-(-9223372036854775807-1)") == "-(-9223372036854775808) does not fit in a 64-bit integer")
        }

        @Test func divisionByZeroIsAnError() {
            #expect(failure("1/0") == "division by zero in 1 / 0")
            #expect(failure("5 % (3-3)") == "division by zero in 5 % 0")
        }

        @Test func syntaxErrorsNameTheColumn() {
            #expect(failure("") == "empty expression")
            #expect(failure("   ") == "empty expression")
            #expect(failure("abc") == "expected a number at column 1, found 'a'")
            #expect(failure("1+") == "expected a number at the end")
            #expect(failure("(1+2") == "expected ')' at column 5")
            #expect(failure("1 2") == "unexpected '2' at column 3")
            #expect(failure("1.5") == "unexpected '.' at column 2")
            #expect(failure("1<<30") == "unexpected '<' at column 2")
            #expect(failure("1) ") == "unexpected ')' at column 2")
        }

        @Test func nestingIsBounded() throws {
            let deep = String(repeating: "(", count: 64) + "1" + String(repeating: ")", count: 64)
            #expect(try value(deep) == 1)
            let tooDeep = String(repeating: "(", count: 65) + "1" + String(repeating: ")", count: 65)
            #expect(failure(tooDeep) == "nested deeper than 64 levels")
            #expect(failure(String(repeating: "-", count: 100_000) + "1") == "nested deeper than 64 levels")
        }
    }
}
