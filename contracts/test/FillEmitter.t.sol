// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {RawLogEmitter, V1FillEmitter, V2FillEmitter} from "../src/FillEmitter.sol";

/// The few forge cheatcodes these tests use (no forge-std dependency: nothing to install).
interface Vm {
    struct Log {
        bytes32[] topics;
        bytes data;
        address emitter;
    }

    function recordLogs() external;
    function getRecordedLogs() external returns (Log[] memory);
}

contract FillEmitterTest {
    Vm constant vm = Vm(address(uint160(uint256(keccak256("hevm cheat code")))));

    // documented topic0 values (shared/platform/polymarket.md section 7)
    bytes32 constant V1_ORDER_FILLED = 0xd0a08e8c493f9c94f29311604c9de1b4e8c8d4c06bd0c789af57f2d65bfec0f6;
    bytes32 constant V2_ORDER_FILLED = 0xd543adfd945773f1a62f74f0ee55a5e3b9b1a28262980ba90b1a89f2ea84d8ee;

    V1FillEmitter v1;
    V2FillEmitter v2;

    function setUp() public {
        v1 = new V1FillEmitter();
        v2 = new V2FillEmitter();
    }

    function testTopic0MatchesTheRealExchanges() public pure {
        require(V1FillEmitter.OrderFilled.selector == V1_ORDER_FILLED, "v1 topic0");
        require(V2FillEmitter.OrderFilled.selector == V2_ORDER_FILLED, "v2 topic0");
        require(keccak256("OrderFilled(bytes32,address,address,uint256,uint256,uint256,uint256,uint256)")
            == V1_ORDER_FILLED, "v1 signature");
        require(keccak256("OrderFilled(bytes32,address,address,uint8,uint256,uint256,uint256,uint256,bytes32,bytes32)")
            == V2_ORDER_FILLED, "v2 signature");
    }

    function testV1FillLayout() public {
        vm.recordLogs();
        v1.emitFill(V1FillEmitter.Fill(bytes32(uint256(7)), address(0xA11CE), address(0xB0B), 0, 42, 5e6, 10e6, 1));
        Vm.Log[] memory logs = vm.getRecordedLogs();
        require(logs.length == 1 && logs[0].emitter == address(v1), "one log from v1");
        require(logs[0].topics.length == 4, "4 topics");
        require(logs[0].topics[0] == V1_ORDER_FILLED, "topic0");
        require(logs[0].topics[1] == bytes32(uint256(7)), "orderHash");
        require(logs[0].topics[2] == bytes32(uint256(uint160(address(0xA11CE)))), "maker");
        require(logs[0].topics[3] == bytes32(uint256(uint160(address(0xB0B)))), "taker");
        require(keccak256(logs[0].data) == keccak256(abi.encode(0, 42, 5e6, 10e6, 1)), "data");
    }

    function testV2BatchIsOneLogPerFillInOrder() public {
        V2FillEmitter.Fill[] memory fills = new V2FillEmitter.Fill[](3);
        for (uint256 i = 0; i < 3; i++) {
            fills[i] = V2FillEmitter.Fill(bytes32(i + 1), address(0xA11CE), address(v2), uint8(i % 2), 99, 1e6 * (i + 1),
                2e6 * (i + 1), i, bytes32("builder"), bytes32("meta"));
        }
        vm.recordLogs();
        v2.emitFills(fills);
        Vm.Log[] memory logs = vm.getRecordedLogs();
        require(logs.length == 3, "three logs");
        for (uint256 i = 0; i < 3; i++) {
            require(logs[i].topics[0] == V2_ORDER_FILLED && logs[i].topics[1] == bytes32(i + 1), "order");
            require(logs[i].data.length == 7 * 32, "7 data words");
            require(keccak256(logs[i].data) == keccak256(abi.encode(uint8(i % 2), 99, 1e6 * (i + 1), 2e6 * (i + 1), i,
                bytes32("builder"), bytes32("meta"))), "data");
        }
    }

    function testRawLogsKeepTheirOddShapes() public {
        RawLogEmitter.RawLog[] memory raws = new RawLogEmitter.RawLog[](5);
        for (uint256 n = 0; n < 5; n++) {
            raws[n].topics = new bytes32[](n);
            for (uint256 j = 0; j < n; j++) raws[n].topics[j] = bytes32(100 * n + j);
            raws[n].data = new bytes(n * 7); // not a whole number of words
        }
        vm.recordLogs();
        v2.emitRaw(raws);
        Vm.Log[] memory logs = vm.getRecordedLogs();
        require(logs.length == 5, "five logs");
        for (uint256 n = 0; n < 5; n++) {
            require(logs[n].topics.length == n && logs[n].data.length == n * 7, "shape");
            for (uint256 j = 0; j < n; j++) require(logs[n].topics[j] == bytes32(100 * n + j), "topic");
        }
    }

    function testRawRejectsMoreThanFourTopics() public {
        RawLogEmitter.RawLog[] memory raws = new RawLogEmitter.RawLog[](1);
        raws[0].topics = new bytes32[](5);
        try v1.emitRaw(raws) {
            revert("five topics were accepted");
        } catch Error(string memory reason) {
            require(keccak256(bytes(reason)) == keccak256("at most 4 topics"), reason);
        }
    }
}
