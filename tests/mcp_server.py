"""A small stdio MCP server for tests/test_mcp.py: `python tests/mcp_server.py`.

Two tools, add and shout; it speaks MCP on stdin/stdout and opens no port.
"""
from mcp.server.fastmcp import FastMCP

server = FastMCP("notebook-test")


@server.tool()
def add(a: int, b: int) -> str:
    """Add two integers."""
    return f"sum={a + b}"


@server.tool()
def shout(text: str) -> str:
    """Return the text in capitals."""
    return text.upper() + "!"


if __name__ == "__main__":
    server.run("stdio")
