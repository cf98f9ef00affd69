#!/usr/bin/perl
# A libmariadb client for the end-to-end tests: DBD::MariaDB with server-side prepared
# statements (COM_STMT_PREPARE / COM_STMT_EXECUTE, binary rows through libmariadb's own
# result handling), so MariaDB's metadata caching is negotiated as any MariaDB client does.
#
# Usage: libmariadb_ps.pl PORT [DATABASE] < steps.json
# Steps (a JSON list): ["do", SQL] | ["prepare", NAME, SQL] | ["execute", NAME, PARAM...].
# Prints one JSON line per execute: {"names": [...], "rows": [[...], ...]}, values as strings
# (NULL as null). Any error ends the script with status 1 and the message on stderr.
use strict;
use warnings;
use DBI;
use JSON::PP;

my ($port, $db) = @ARGV;
die "usage: $0 PORT [DATABASE]\n" unless $port;
my $dsn = "DBI:MariaDB:host=127.0.0.1;port=$port;mariadb_server_prepare=1";
$dsn .= ";database=$db" if defined $db && $db ne '';
my $dbh = DBI->connect($dsn, 'root', '', { RaiseError => 1, PrintError => 0, AutoCommit => 1 });

my $steps = decode_json(do { local $/; <STDIN> });
my %statements;
my $json = JSON::PP->new->canonical;
for my $step (@$steps) {
    my ($kind, @args) = @$step;
    if ($kind eq 'do') {
        $dbh->do($args[0]);
    } elsif ($kind eq 'prepare') {
        $statements{$args[0]} = $dbh->prepare($args[1]);
    } elsif ($kind eq 'execute') {
        my $sth = $statements{shift @args} or die "unknown statement\n";
        $sth->execute(@args);
        my @rows = map { [map { defined $_ ? "$_" : undef } @$_] } @{ $sth->fetchall_arrayref };
        print $json->encode({ names => $sth->{NAME}, rows => \@rows }), "\n";
    } else {
        die "unknown step $kind\n";
    }
}
$dbh->disconnect;
