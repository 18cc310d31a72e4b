#This dataset involves one female actor and one male actor m
@problemName GunPoint
@timeStamps false
@missing false
@univariate true
@equalLength true
@seriesLength 8
@classLabel true 1 2
@data
-1.1250133,-1.1313383,-1.1382884,-1.1466873,-1.1386387,-1.1414312,-1.1436908,-1.1443789:1
-0.62695602,-0.62591896,-0.62753797,-0.62632624,-0.62408545,-0.62470754,-0.62500642,-0.62417532:2
