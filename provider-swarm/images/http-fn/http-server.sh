#!/bin/sh
# Started by fwatchdog in http mode with PORT set to a free loopback port.
exec httpd -f -p "127.0.0.1:${PORT:?}" -h /www
