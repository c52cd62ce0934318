"""The ``sql`` identity back-end: users and groups in nimbus's database."""
