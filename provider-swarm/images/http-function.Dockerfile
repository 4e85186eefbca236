# The http-mode test function: fwatchdog keeps one busybox httpd running
# (on the loopback port it passes in $PORT) and proxies calls to it; every
# path runs the CGI script www/cgi-bin/index.cgi.
FROM scratch
COPY rootfs/ /
ENV PATH=/usr/bin:/bin \
    mode=http \
    fprocess="sh /http-server.sh"
EXPOSE 8080
ENTRYPOINT ["/usr/bin/fwatchdog"]
