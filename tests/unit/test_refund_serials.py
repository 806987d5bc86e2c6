"""A refund finds the order's serials among the buyer's blocks by their printed serials,
Kapok's own and a mirrored registry's (Verra's) alike."""

from market.usecases.refunds import serial_numbers


def test_a_refund_reads_batch_and_range_of_kapoks_printed_serials():
    assert serial_numbers("KAP-12-1000001-1008500-VCS1067-2021-PE") == (12, 1000001, 1008500)


def test_a_refund_reads_batch_and_range_of_verras_printed_serials():
    assert serial_numbers(
        "19380-941382555-941412554-VCS-VCU-1310-VER-CN-13-3005-01012022-31102022-0"
    ) == (19380, 941382555, 941412554)
    assert serial_numbers("4147-176338408-176338907-VCU-016-MER-AU-14-641-16042012-15042013-0") \
        == (4147, 176338408, 176338907)
